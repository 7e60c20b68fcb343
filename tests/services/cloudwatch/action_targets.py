"""What alarm actions act on in the embedded cloud: a small Auto Scaling group of its own (never the
database's group) with a +1 scaling policy, an SNS topic with an SQS queue subscribed, and a lone
instance. Its image is not the database image, so the realizer runs no process for its instances."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Callable


@dataclass
class Targets:
    client: Callable            # service name -> boto3 client signed with the cloud's root key
    group: str
    policy_arn: str
    topic_arn: str
    queue_url: str
    image: str
    subnet: str

    def desired(self) -> int:
        groups = self.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[self.group])
        return groups["AutoScalingGroups"][0]["DesiredCapacity"]

    def notifications(self, wait: int = 1) -> list[dict]:
        """Every alarm notification the queue holds now (SNS envelope unwrapped), deleted once read."""
        sqs, found = self.client("sqs"), []
        while True:
            got = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
            messages = got.get("Messages", [])
            if not messages:
                return found
            for m in messages:
                envelope = json.loads(m["Body"])
                found.append({"Subject": envelope.get("Subject"), **json.loads(envelope["Message"])})
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])

    def lone_instance(self) -> str:
        ec2 = self.client("ec2")
        return ec2.run_instances(ImageId=self.image, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                 SubnetId=self.subnet)["Instances"][0]["InstanceId"]

    def instance_state(self, instance_id: str) -> str:
        found = self.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
        return found[0]["Instances"][0]["State"]["Name"]


def _image(ec2) -> str:
    """Any image that is not tagged as eucadb's database image (moto's own AMIs, else a new one)."""
    for image in ec2.describe_images()["Images"]:
        if not any(t["Key"] == "eucadb:image" for t in image.get("Tags", [])):
            return image["ImageId"]
    return ec2.register_image(Name=f"cw-actions-{uuid.uuid4().hex[:6]}", RootDeviceName="/dev/sda1",
                              VirtualizationType="hvm")["ImageId"]


def make_targets(client: Callable, subnet: str) -> Targets:
    tag = uuid.uuid4().hex[:8]
    ec2, asg, sns, sqs = client("ec2"), client("autoscaling"), client("sns"), client("sqs")
    image = _image(ec2)
    template = f"cw-actions-{tag}"
    ec2.create_launch_template(LaunchTemplateName=template,
                               LaunchTemplateData={"ImageId": image, "InstanceType": "t3.micro"})
    group = f"cw-actions-{tag}"
    asg.create_auto_scaling_group(AutoScalingGroupName=group, MinSize=0, MaxSize=3, DesiredCapacity=0,
                                  LaunchTemplate={"LaunchTemplateName": template, "Version": "$Latest"},
                                  VPCZoneIdentifier=subnet)
    asg.put_scaling_policy(AutoScalingGroupName=group, PolicyName=f"scale-out-{tag}", PolicyType="SimpleScaling",
                           AdjustmentType="ChangeInCapacity", ScalingAdjustment=1, Cooldown=0)
    # moto's answer lacks PolicyARN (AWS's has it): read it back
    policy = asg.describe_policies(AutoScalingGroupName=group)["ScalingPolicies"][0]["PolicyARN"]
    topic = sns.create_topic(Name=f"cw-actions-{tag}")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"cw-actions-{tag}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return Targets(client, group, policy, topic, queue, image, subnet)
